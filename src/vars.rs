//! (placeholder: the one variable precedence list)
