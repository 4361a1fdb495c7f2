//! Integration tests for the hub: real upstream servers, real clients, one test binary.

mod common;

mod control;
mod credentials;

mod api_v1;
mod badinput;
mod dataplane;
mod fairness;
mod faults;
mod hardening_auth;
mod hardening_proc;
mod identity;
mod interop;
mod modern;
mod observability;
mod process;
mod sessions;
mod smart;
