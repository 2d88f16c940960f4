//! Model formats that are not pickles or archives.

pub mod gguf;
pub mod hdf5;
pub mod jinja;
pub mod keras;
pub mod numpy;
pub mod onnx;
pub mod protobuf;
pub mod safetensors;
pub mod savedmodel;
