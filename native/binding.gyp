{
  "targets": [
    {
      "target_name": "hueguard_ima",
      "sources": ["ima_scan.cc"],
      "cflags_cc": ["-O2", "-std=c++17"],
      "conditions": [["OS=='linux'", { "libraries": ["-ldl"] }]],
      "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-O2", "-std=c++17"] }
    }
  ]
}
