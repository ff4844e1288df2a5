//! Where bundles come from and when they change: local directories and
//! archives watched with notify, debounced, reloaded off the request path.
//! (HTTP bundle servers are a later addition.)

mod watch;

pub use watch::{watch_bundles, SourceError, WatchHandle};
