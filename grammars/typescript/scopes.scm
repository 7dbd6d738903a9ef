(function_declaration name: (identifier) @name) @scope.function
(generator_function_declaration name: (identifier) @name) @scope.function
(class_declaration name: (type_identifier) @name) @scope.class
(abstract_class_declaration name: (type_identifier) @name) @scope.class
(interface_declaration name: (type_identifier) @name) @scope.class
(enum_declaration name: (identifier) @name) @scope.class
(internal_module name: (_) @name) @scope.module
(method_definition name: (_) @name) @scope.method
; const f = () => {...} / const f = function () {...}
(lexical_declaration (variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)])) @scope.function
(variable_declaration (variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)])) @scope.function
; `export` is part of the scope
(export_statement declaration: (function_declaration name: (identifier) @name)) @scope.function
(export_statement declaration: (class_declaration name: (type_identifier) @name)) @scope.class
(export_statement declaration: (abstract_class_declaration name: (type_identifier) @name)) @scope.class
(export_statement declaration: (interface_declaration name: (type_identifier) @name)) @scope.class
