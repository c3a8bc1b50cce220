// The one place that touches the generated ONNX protobuf code (onnx-proto, IR 8 schema, on protobufjs 6).
import onnxProto from 'onnx-proto';
import protobuf from 'protobufjs/minimal.js';

// int64 fields decode as plain numbers, not Long objects (shapes and sizes never approach 2^53).
protobuf.util.Long = undefined as unknown as typeof protobuf.util.Long;
protobuf.configure();

export const onnx = onnxProto.onnx;
export type ModelProto = onnxProto.onnx.ModelProto;
export type IModelProto = onnxProto.onnx.IModelProto;
export type GraphProto = onnxProto.onnx.GraphProto;
export type IGraphProto = onnxProto.onnx.IGraphProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;
export type AttributeProto = onnxProto.onnx.IAttributeProto;
export type ValueInfoProto = onnxProto.onnx.IValueInfoProto;

export const AttributeType = onnxProto.onnx.AttributeProto.AttributeType;
