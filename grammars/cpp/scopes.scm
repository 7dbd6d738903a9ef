(function_definition declarator: (function_declarator declarator: [(identifier) (field_identifier) (operator_name) (destructor_name)] @name)) @scope.function
(function_definition declarator: (function_declarator declarator: (qualified_identifier name: (_) @name))) @scope.function
(function_definition declarator: (reference_declarator (function_declarator declarator: [(identifier) (field_identifier) (qualified_identifier)] @name))) @scope.function
(function_definition declarator: (pointer_declarator declarator: (function_declarator declarator: [(identifier) (field_identifier) (qualified_identifier)] @name))) @scope.function
(template_declaration (function_definition declarator: (function_declarator declarator: [(identifier) (field_identifier)] @name))) @scope.function
(class_specifier name: (type_identifier) @name body: (field_declaration_list)) @scope.class
(struct_specifier name: (type_identifier) @name body: (field_declaration_list)) @scope.class
(union_specifier name: (type_identifier) @name body: (field_declaration_list)) @scope.class
(template_declaration (class_specifier name: (type_identifier) @name body: (field_declaration_list))) @scope.class
(template_declaration (struct_specifier name: (type_identifier) @name body: (field_declaration_list))) @scope.class
(namespace_definition name: (_) @name) @scope.namespace
