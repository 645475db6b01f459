"""Model providers behind one protocol, and the registry that names them."""
