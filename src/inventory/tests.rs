//! Tests of the inventory layer as a whole.
