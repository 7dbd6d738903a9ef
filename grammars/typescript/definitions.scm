(function_declaration name: (identifier) @name body: (_) @body) @definition.function
(generator_function_declaration name: (identifier) @name body: (_) @body) @definition.function
(function_signature name: (identifier) @name) @definition.function
(class_declaration name: (type_identifier) @name body: (_) @body) @definition.class
(abstract_class_declaration name: (type_identifier) @name body: (_) @body) @definition.class
(interface_declaration name: (type_identifier) @name body: (_) @body) @definition.interface
(enum_declaration name: (identifier) @name body: (_) @body) @definition.enum
(type_alias_declaration name: (type_identifier) @name) @definition.type
(method_definition name: (_) @name body: (_) @body) @definition.method
(lexical_declaration (variable_declarator name: (identifier) @name value: [(arrow_function body: (_) @body) (function_expression body: (_) @body)])) @definition.function
(program (lexical_declaration (variable_declarator name: (identifier) @name)) @definition.variable)
(program (variable_declaration (variable_declarator name: (identifier) @name)) @definition.variable)
(export_statement declaration: (function_declaration name: (identifier) @name body: (_) @body)) @definition.function
(export_statement declaration: (class_declaration name: (type_identifier) @name body: (_) @body)) @definition.class
(export_statement declaration: (interface_declaration name: (type_identifier) @name body: (_) @body)) @definition.interface
(export_statement declaration: (type_alias_declaration name: (type_identifier) @name)) @definition.type
(export_statement declaration: (enum_declaration name: (identifier) @name body: (_) @body)) @definition.enum
(program (export_statement declaration: (lexical_declaration (variable_declarator name: (identifier) @name))) @definition.variable)
