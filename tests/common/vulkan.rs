//! Opening the Vulkan device of the `vulkan_*` tests. A machine without one fails the tests
//! (CI installs lavapipe, so a silent skip would hide a broken setup) unless
//! `LIBBERT_SKIP_VULKAN=1` says to skip.

use bert::backend::vulkan::{DeviceChoice, Vulkan};

/// The device, or `None` when there is none and `LIBBERT_SKIP_VULKAN=1`.
pub fn device() -> Option<Vulkan> {
    match Vulkan::open(DeviceChoice::Any) {
        Ok(v) => {
            eprintln!("vulkan device: {}", v.device_name());
            Some(v)
        }
        Err(e) if std::env::var("LIBBERT_SKIP_VULKAN").as_deref() == Ok("1") => {
            eprintln!("skipped (LIBBERT_SKIP_VULKAN=1): {e}");
            None
        }
        Err(e) => panic!(
            "no Vulkan device ({e}); install mesa-vulkan-drivers (lavapipe) or set \
             LIBBERT_SKIP_VULKAN=1 to skip"
        ),
    }
}
