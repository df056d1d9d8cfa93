//! Log subscriber. TODO
