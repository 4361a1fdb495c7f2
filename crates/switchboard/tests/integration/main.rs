//! Integration tests for the hub: real upstream servers, real clients, one test binary.

mod common;

mod dataplane;
mod faults;
mod interop;
mod process;
