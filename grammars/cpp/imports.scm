(preproc_include) @import
(translation_unit (using_declaration) @import)
