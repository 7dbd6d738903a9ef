(function_definition name: (identifier) @name body: (_) @body) @definition.function
(class_definition name: (identifier) @name body: (_) @body) @definition.class
(decorated_definition definition: (function_definition name: (identifier) @name body: (_) @body)) @definition.function
(decorated_definition definition: (class_definition name: (identifier) @name body: (_) @body)) @definition.class
(module (expression_statement (assignment left: (identifier) @name)) @definition.variable)
(module (expression_statement (assignment left: (pattern_list (identifier) @name))) @definition.variable)
; chained assignments: A = B = None
(module (expression_statement (assignment right: (assignment left: (identifier) @name))) @definition.variable)
(module (expression_statement (assignment right: (assignment right: (assignment left: (identifier) @name)))) @definition.variable)
