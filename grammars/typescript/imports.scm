(program (import_statement) @import)
(program (import_alias) @import)
; CommonJS: const x = require("x")
(program
  (lexical_declaration (variable_declarator value: (call_expression function: (identifier) @_require)))
  @import
  (#eq? @_require "require"))
(program (expression_statement (string)) @import.anchor)
(program (hash_bang_line) @import.anchor)
