//! Wire types shared by the Conclave server and its clients. Request bodies
//! refuse unknown fields so that a misspelt option is an error, not a silent
//! no-op.
//!
//! The web app's TypeScript types are generated from these (`cargo xtask
//! codegen`, with the `ts` feature): a type the web app sends or receives
//! is listed in `xtask/src/codegen.rs`, and a change here is followed by a
//! run of that command (a test fails until it is).

pub mod audit;
pub mod auth;
pub mod conversation;
pub mod credential;
pub mod device;
pub mod file;
pub mod held;
pub mod identity;
pub mod markup;
pub mod media;
pub mod meeting;
pub mod names;
pub mod org;
pub mod problem;
pub mod quality;
pub mod signal;
mod string_enum;

pub use auth::*;
pub use device::{Device, DeviceList, DeviceRegistration, RegisterDeviceRequest};
pub use identity::*;
pub use meeting::*;
pub use org::*;
pub use problem::{Problem, ProblemCode};
