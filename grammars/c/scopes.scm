(function_definition declarator: (function_declarator declarator: (identifier) @name)) @scope.function
(function_definition declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier) @name))) @scope.function
(function_definition declarator: (pointer_declarator declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier) @name)))) @scope.function
(struct_specifier name: (type_identifier) @name body: (field_declaration_list)) @scope.class
(union_specifier name: (type_identifier) @name body: (field_declaration_list)) @scope.class
