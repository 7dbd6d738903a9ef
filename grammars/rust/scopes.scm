(function_item name: (identifier) @name) @scope.function
(impl_item type: (type_identifier) @name) @scope.class
(impl_item type: (generic_type type: (type_identifier) @name)) @scope.class
(impl_item type: (scoped_type_identifier name: (type_identifier) @name)) @scope.class
(trait_item name: (type_identifier) @name) @scope.class
(struct_item name: (type_identifier) @name) @scope.class
(enum_item name: (type_identifier) @name) @scope.class
(mod_item name: (identifier) @name body: (declaration_list)) @scope.module
