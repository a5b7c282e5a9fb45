//! JSON and NDJSON readers (to be implemented).
use super::*;
pub(super) fn read_document(path: &Path, _opts: &ReadOptions) -> Result<RecordStream, SourceError> {
    Err(SourceError::Invalid {
        path: path.to_path_buf(),
        message: "JSON reading is not implemented yet".into(),
    })
}
pub(super) fn read_lines(path: &Path, _opts: &ReadOptions) -> Result<RecordStream, SourceError> {
    Err(SourceError::Invalid {
        path: path.to_path_buf(),
        message: "NDJSON reading is not implemented yet".into(),
    })
}
