//! CSV reader (to be implemented).
use super::*;
pub(super) fn read(path: &Path, _opts: &ReadOptions) -> Result<RecordStream, SourceError> {
    Err(SourceError::Invalid { path: path.to_path_buf(), message: "CSV reading is not implemented yet".into() })
}
