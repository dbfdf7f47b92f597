#pragma once

#include "ofxsImageEffect.h"

namespace liveedit {

class LiveEditFactory : public OFX::PluginFactoryHelper<LiveEditFactory> {
public:
    LiveEditFactory();
    void describe(OFX::ImageEffectDescriptor& desc) override;
    void describeInContext(OFX::ImageEffectDescriptor& desc, OFX::ContextEnum context) override;
    OFX::ImageEffect* createInstance(OfxImageEffectHandle handle, OFX::ContextEnum context) override;
    // The support library's main entry behind a catch-all, plus OFX 1.5 colour management (entry.cpp).
    OfxPluginEntryPoint* getMainEntry() override;
};

// Declares OFX 1.5 colour management on the descriptor when the host offers it (entry.cpp).
void describeColourManagement(OFX::ImageEffectDescriptor& desc);

}  // namespace liveedit
