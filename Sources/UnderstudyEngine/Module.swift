// placeholder so the target compiles; replaced as the module grows
