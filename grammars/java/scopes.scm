(class_declaration name: (identifier) @name) @scope.class
(interface_declaration name: (identifier) @name) @scope.class
(enum_declaration name: (identifier) @name) @scope.class
(record_declaration name: (identifier) @name) @scope.class
(annotation_type_declaration name: (identifier) @name) @scope.class
(method_declaration name: (identifier) @name) @scope.method
(constructor_declaration name: (identifier) @name) @scope.method
(compact_constructor_declaration name: (identifier) @name) @scope.method
