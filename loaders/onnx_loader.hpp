// ONNX protobuf -> graph::Graph, as written in the file (floor 4).
//
//   graph::Graph g = loaders::load_onnx_file("models/resnet50.onnx");
//   graph::finalize(g, options);   // sort, check support, infer shapes
//
// The loader checks structure (every name resolves, no value produced twice, tensors
// hold as many elements as their shapes say) and throws InvalidInput "<name>: ..."
// naming the node, initializer or field at fault. What is well-formed but beyond nnjit
// (string tensors, subgraph attributes, non-tensor inputs, sparse initializers) goes to
// Graph::unsupported for finalize to report with everything else. Ops, domains and
// opsets are not judged here.
//
// Values: initializers are constants (a graph input that has an initializer is a
// constant, not an input); graph inputs carry dtype and shape from their type, with -1
// and Value::dim_params[i] naming each symbolic dim ("?" for an anonymous one) and
// shape_known = the type gives a shape (the rank is known); node outputs start untyped.
// External data is memory-mapped: those constants are views that keep the file mapped.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "graph/graph.hpp"
#include "nnjit/tensor.hpp"

namespace nnjit::loaders {

// Parses serialized ModelProto bytes. `name` prefixes every message and becomes
// Graph::source; external data locations resolve against `base_dir` ("" = the current
// directory). Without an `owner` the bytes need not outlive the call; with one, that
// keeps them (a mapped file), large aligned raw_data become views of them and
// Graph::file_bytes says where they are.
graph::Graph load_onnx(const void* data, std::size_t size, const std::string& name, const std::string& base_dir,
                       std::shared_ptr<void> owner = {});

// Maps the file and loads it with base_dir = the file's folder.
graph::Graph load_onnx_file(const std::string& path);

// Decodes one serialized TensorProto (the CLI's .pb input files); external data refused.
Tensor parse_tensor_proto(const void* data, std::size_t size, const std::string& name);

}  // namespace nnjit::loaders
