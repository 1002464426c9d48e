#include <nnjit/nnjit.hpp>

#include <iostream>

int main(int argc, char** argv) {
  try {
    nnjit::Engine engine;
    if (argc > 1) {
      auto model = engine.load(argv[1]);
      std::cout << "inputs: " << model->inputs().size() << "\n";
    }
    std::cout << "consumer ok\n";
  } catch (const nnjit::Error& e) {
    std::cerr << e.what() << "\n";
    return static_cast<int>(e.code());
  }
  return 0;
}
