(source_file (import_declaration) @import)
(source_file (package_clause) @import.anchor)
