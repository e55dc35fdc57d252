//! Fresh large buffers backed by transparent huge pages (see [`dj_rt::pages`]).

pub(crate) use dj_rt::pages::advise_huge;
