//! Integration tests for the hub: real upstream servers, real clients, one test binary.

mod common;

mod control;

mod api_v1;
mod badinput;
mod dataplane;
mod faults;
mod interop;
mod modern;
mod process;
