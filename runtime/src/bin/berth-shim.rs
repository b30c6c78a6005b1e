//! `berth-shim`: supervises one native container for berthd (see
//! `berth_runtime::executor::native::shim`). berthd starts it; it is not
//! meant to be run by hand.

fn main() {
    berth_runtime::executor::native::shim::main()
}
