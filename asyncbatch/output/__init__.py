"""What a run leaves behind and shows: the report (:mod:`.report`), the journal
beside it (:mod:`.journal`), JUnit XML (:mod:`.junit`), the dry-run plan
(:mod:`.plan`), live progress (:mod:`.progress`) and the text for people on standard
error (:mod:`.terminal`)."""
