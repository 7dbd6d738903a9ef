(program (import_declaration) @import)
(program (package_declaration) @import.anchor)
