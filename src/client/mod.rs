//! replay's measuring core: HTTP, stream framing, protocols, the scheduler and its output.

pub mod cancel;
pub mod health;
pub mod http;
pub mod output;
pub mod probe;
pub mod protocol;
pub mod run;
pub mod sse;
pub mod tls;
