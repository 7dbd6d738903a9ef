(source_file (use_declaration) @import)
(source_file (extern_crate_declaration) @import)
(source_file (inner_attribute_item) @import.anchor)
