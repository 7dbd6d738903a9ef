(function_declaration name: (identifier) @name) @scope.function
; @receiver names the type a method belongs to, so its struct is shown like a class header.
(method_declaration
  receiver: (parameter_list (parameter_declaration type: [(type_identifier) @receiver (pointer_type (type_identifier) @receiver) (generic_type type: (type_identifier) @receiver) (pointer_type (generic_type type: (type_identifier) @receiver))]))
  name: (field_identifier) @name) @scope.method
(type_spec name: (type_identifier) @name type: [(struct_type) (interface_type)]) @scope.class
