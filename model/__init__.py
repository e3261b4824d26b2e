"""AMB-DSGDN (arXiv 2603.10043): encoder, graph, diffrgcn, modality_dropout, classifier, data, training."""
