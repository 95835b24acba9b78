//! The `vipkeeper` command line. SKELETON: filled in by the config work.
fn main() {
    std::process::exit(2);
}
