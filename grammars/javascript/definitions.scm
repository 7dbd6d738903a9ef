(function_declaration name: (identifier) @name body: (_) @body) @definition.function
(generator_function_declaration name: (identifier) @name body: (_) @body) @definition.function
(class_declaration name: (identifier) @name body: (_) @body) @definition.class
(method_definition name: (_) @name body: (_) @body) @definition.method
(lexical_declaration (variable_declarator name: (identifier) @name value: [(arrow_function body: (_) @body) (function_expression body: (_) @body)])) @definition.function
(program (lexical_declaration (variable_declarator name: (identifier) @name)) @definition.variable)
(program (variable_declaration (variable_declarator name: (identifier) @name)) @definition.variable)
(export_statement declaration: (function_declaration name: (identifier) @name body: (_) @body)) @definition.function
(export_statement declaration: (class_declaration name: (identifier) @name body: (_) @body)) @definition.class
(program (export_statement declaration: (lexical_declaration (variable_declarator name: (identifier) @name))) @definition.variable)
