(module (import_statement) @import)
(module (import_from_statement) @import)
(module (future_import_statement) @import)
; A leading module docstring: new imports go after it.
(module (expression_statement (string)) @import.anchor)
