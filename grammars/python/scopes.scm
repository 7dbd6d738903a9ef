; A decorated definition's scope includes its decorators; the undecorated match of the same
; definition is dropped by the picker (same name, direct child).
(function_definition name: (identifier) @name) @scope.function
(class_definition name: (identifier) @name) @scope.class
(decorated_definition definition: (function_definition name: (identifier) @name)) @scope.function
(decorated_definition definition: (class_definition name: (identifier) @name)) @scope.class
