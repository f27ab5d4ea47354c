"""The live probe behind `atlas serve --live`: a loopback ASGI server that
keeps the model warm and answers an input image with every unit's
activation map of a layer, the model's top classes, and one unit's
deconvnet or guided-backprop map."""
