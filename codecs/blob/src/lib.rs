//! The DataJoint blob format.
