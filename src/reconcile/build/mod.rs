//! The desired Secret from the spec and the values read (pure).

pub mod compose;
pub mod secret;
pub mod select;
pub mod template;
pub mod writable;
