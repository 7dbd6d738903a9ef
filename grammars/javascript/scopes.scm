(function_declaration name: (identifier) @name) @scope.function
(generator_function_declaration name: (identifier) @name) @scope.function
(class_declaration name: (identifier) @name) @scope.class
(method_definition name: (_) @name) @scope.method
; const f = () => {...} / const f = function () {...}
(lexical_declaration (variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)])) @scope.function
(variable_declaration (variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)])) @scope.function
; `export` is part of the scope
(export_statement declaration: (function_declaration name: (identifier) @name)) @scope.function
(export_statement declaration: (class_declaration name: (identifier) @name)) @scope.class
