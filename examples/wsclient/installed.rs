//! The installable `wsclient`: the binary of the `cli` feature
//! (`cargo install --path . --features cli`), built from the same source as
//! `cargo build --example wsclient` (`main.rs` here), so scripts that build
//! the example and people who install the binary run the same program.
//! Its contract is `wsclient --help`.

#[path = "main.rs"]
mod program;

fn main() {
    program::main();
}
