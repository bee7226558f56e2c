//! Wire types shared by the Conclave server and its clients. Request bodies
//! refuse unknown fields so that a misspelt option is an error, not a silent
//! no-op.

pub mod auth;
pub mod credential;
pub mod media;
pub mod meeting;
pub mod names;
pub mod org;
pub mod problem;
pub mod signal;

pub use auth::*;
pub use meeting::*;
pub use org::*;
pub use problem::Problem;
