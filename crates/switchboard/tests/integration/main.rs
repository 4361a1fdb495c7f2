//! Integration tests for the hub: real upstream servers, real clients, one test binary.

#[macro_use]
mod common;

mod control;
mod credentials;
mod dashboard;
mod webdriver;

mod api_v1;
mod app_in_process;
mod badinput;
mod dataplane;
mod deploy_files;
mod fairness;
mod faults;
mod hardening_auth;
mod hardening_envelope;
mod hardening_net;
mod hardening_proc;
mod hardening_stdio;
mod identity;
mod import_formats;
mod interop;
mod newuser;
mod observability;
mod otel_sampling;
mod otel_tracing;
mod ownership;
mod pinning;
mod process;
mod replicas;
mod replicas_nginx;
mod session_list;
mod sessions;
mod smart;
mod smart_inspector;
mod smart_semantic;
mod smart_usage;
mod stateless;
