(function_declaration name: (identifier) @name body: (_) @body) @definition.function
(method_declaration name: (field_identifier) @name body: (_) @body) @definition.method
(type_spec name: (type_identifier) @name type: (_) @body) @definition.type
(source_file (const_declaration (const_spec name: (identifier) @name) @definition.constant))
(source_file (var_declaration (var_spec name: (identifier) @name) @definition.variable))
