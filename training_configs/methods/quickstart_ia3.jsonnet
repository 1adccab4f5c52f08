// (IA)^3 in place of late prompt in the quickstart: the same data, reader, pooling, linear head
// and trainer; the method's own learning rate and options (training_configs/README.md).
// `allennlp lpt-compare training_configs/quickstart.jsonnet` trains this same config.
local lpt = import '../common/lpt.libsonnet';
lpt.withMethod(import '../quickstart.jsonnet', 'ia3', hidden=384)
