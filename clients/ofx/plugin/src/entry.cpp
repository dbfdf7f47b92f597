// The bundle's C entry points. The support library's own OfxGetNumberOfPlugins/OfxGetPlugin are
// compiled under other names (CMakeLists.txt) and wrapped here: a bounds check and a catch-all,
// so that nothing - an exception, an index out of range - reaches the host through the C ABI.
// The per-action main entry is wrapped the same way; it also answers OFX 1.5 colour management.

#include <cstring>
#include <string>

#include "ofxColour.h"
#include "ofxCore.h"
#include "ofxImageEffect.h"
#include "ofxsImageEffect.h"
#include "ofxsSupportPrivate.h"  // OFX::Private::gHost and the instance lookup (the SDK's Support/Library)

#include "plugin.hpp"

#if defined(_WIN32)
#  define LIVEEDIT_EXPORT __declspec(dllexport)
#else
#  define LIVEEDIT_EXPORT __attribute__((visibility("default")))
#endif

extern "C" int LiveEditSupport_OfxGetNumberOfPlugins(void);
extern "C" OfxPlugin* LiveEditSupport_OfxGetPlugin(int nth);

namespace liveedit {

namespace {

std::string gUid;  // the support library's key for this plug-in

bool colourManaged(const void* handle, std::string* style) {
    OFX::ImageEffect* effect = OFX::Private::retrieveImageEffectPointer((OfxImageEffectHandle)handle);
    if (!effect) return false;
    *style = effect->getPropertySet().propGetString(kOfxImageEffectPropColourManagementStyle, false);
    return !style->empty() && *style != kOfxImageEffectColourManagementNone;
}

OfxStatus guardedEntry(const char* action, const void* handle, OfxPropertySetHandle in, OfxPropertySetHandle out) {
    try {
        if (!action) return kOfxStatErrBadHandle;
        if (std::strcmp(action, kOfxImageEffectActionGetOutputColourspace) == 0) {
            if (!out) return kOfxStatReplyDefault;
            // The edit comes back in the source's colourspace.
            OFX::PropertySet(out).propSetString(kOfxImageClipPropColourspace, "OfxColourspace_Source", 0, false);
            return kOfxStatOK;
        }
        OfxStatus status = OFX::Private::mainEntryStr(action, handle, in, out, gUid.c_str());
        std::string style;
        if (std::strcmp(action, kOfxImageEffectActionGetClipPreferences) == 0 && out &&
            (status == kOfxStatOK || status == kOfxStatReplyDefault) && colourManaged(handle, &style)) {
            // The model reads display-referred SDR (sRGB-encoded) pictures.
            OFX::PropertySet prefs(out);
            const char* name = "OfxImageClipPropPreferredColourspaces_" kOfxImageEffectSimpleSourceClipName;
            int i = 0;
            if (style != kOfxImageEffectColourManagementBasic) prefs.propSetString(name, kOfxColourspaceSrgbTx, i++, false);
            prefs.propSetString(name, kOfxColourspaceOfxDisplaySdr, i, false);
            return kOfxStatOK;
        }
        return status;
    } catch (...) {
        return kOfxStatFailed;
    }
}

}  // namespace

OfxPluginEntryPoint* LiveEditFactory::getMainEntry() {
    gUid = getUID();
    return &guardedEntry;  // not the base class's unguarded mainEntry
}

void describeColourManagement(OFX::ImageEffectDescriptor& desc) {
    if (!OFX::Private::gHost) return;
    OFX::PropertySet host(OFX::Private::gHost->host);
    const std::string style = host.propGetString(kOfxImageEffectPropColourManagementStyle, false);
    if (style.empty() || style == kOfxImageEffectColourManagementNone) return;
    desc.getPropertySet().propSetString(kOfxImageEffectPropColourManagementStyle, kOfxImageEffectColourManagementCore, 0, false);
    desc.getPropertySet().propSetString(kOfxImageEffectPropColourManagementAvailableConfigs, kOfxConfigIdentifier, 0, false);
}

}  // namespace liveedit

namespace OFX {
namespace Plugin {
void getPluginIDs(OFX::PluginFactoryArray& ids) {
    static liveedit::LiveEditFactory factory;
    ids.push_back(&factory);
}
}  // namespace Plugin
}  // namespace OFX

extern "C" {

LIVEEDIT_EXPORT int OfxGetNumberOfPlugins(void) {
    try {
        return LiveEditSupport_OfxGetNumberOfPlugins();
    } catch (...) {
        return 0;
    }
}

LIVEEDIT_EXPORT OfxPlugin* OfxGetPlugin(int nth) {
    try {
        if (nth < 0 || nth >= LiveEditSupport_OfxGetNumberOfPlugins()) return nullptr;
        return LiveEditSupport_OfxGetPlugin(nth);
    } catch (...) {
        return nullptr;
    }
}

}  // extern "C"
