//! Helpers shared by the end-to-end tests: start the real server binary, talk HTTP to it.
