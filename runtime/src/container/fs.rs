//! Container filesystems: archive (docker cp), export, diff, commit (being written).
