//! `berth-shim`: supervises one native container for berthd (see
//! `berth_executor::native::shim`). berthd starts it; it is not meant to be
//! run by hand.

fn main() {
    berth_executor::native::shim::main()
}
